package io.github.riskcontrol.pii;

import java.security.InvalidAlgorithmParameterException;
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
    byte[] data = Bronze.utf8(value);
    byte[] ad = Bronze.utf8(aad);
    byte[] blob;
    try {
      blob = Bronze.seal(cipher.get(), ivMac.get(), key, data, ad);
    } catch (InvalidAlgorithmParameterException e) {
      // The JDK's GCM refuses to encrypt twice in a row under the same key and nonce on
      // one Cipher; a synthetic IV repeats by design for an equal value (same ciphertext,
      // so nothing is revealed beyond that equality): a fresh Cipher takes it.
      Cipher fresh = Bronze.gcm();
      cipher.set(fresh);
      blob = Bronze.seal(fresh, ivMac.get(), key, data, ad);
    }
    return prefix + Base64.getEncoder().encodeToString(blob);
  }

  @Override
  public String toString() {
    return "encrypt";
  }
}
