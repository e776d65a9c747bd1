package io.github.riskcontrol.pii;

import java.util.Base64;
import javax.crypto.Cipher;
import javax.crypto.Mac;
import org.apache.spark.sql.api.java.UDF2;

/**
 * {@code encrypt(value, aad)}: the {@code enc:v2:} ciphertext of a string under the active
 * bronze key; null stays null and a value already sealed ({@code enc:...}) is kept as it
 * is, never sealed twice.
 */
public final class Encrypt implements UDF2<String, String, String> {
  private static final long serialVersionUID = 1L;
  private final byte[] key;
  private final byte[] ivKey;
  private final String prefix;
  // Per thread: a Cipher and a Mac are not thread-safe, and Spark may share this object.
  private transient ThreadLocal<Cipher> cipher;
  private transient ThreadLocal<Mac> ivMac;

  public Encrypt(byte[] key) {
    this.key = key.clone();
    this.ivKey = Bronze.ivKey(key);
    this.prefix = Bronze.V2 + Bronze.keyId(key) + ":";
  }

  @Override
  public String call(String value, String aad) throws Exception {
    if (value == null) {
      return null;
    }
    if (value.startsWith(Bronze.ANY)) {
      return value;
    }
    synchronized (this) {
      if (cipher == null) {
        cipher = ThreadLocal.withInitial(Bronze::gcm);
        ivMac = ThreadLocal.withInitial(() -> Bronze.hmac(ivKey));
      }
    }
    byte[] blob =
        Bronze.seal(cipher.get(), ivMac.get(), key, Bronze.utf8(value), Bronze.utf8(aad));
    return prefix + Base64.getEncoder().encodeToString(blob);
  }

  @Override
  public String toString() {
    return "encrypt";
  }
}
