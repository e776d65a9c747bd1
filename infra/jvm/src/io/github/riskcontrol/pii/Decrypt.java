package io.github.riskcontrol.pii;

import java.nio.charset.CharacterCodingException;
import java.util.Base64;
import javax.crypto.Cipher;
import org.apache.spark.sql.api.java.UDF2;

/**
 * {@code decrypt(value, aad)}: the clear text of an {@code enc:v2:} value (its key found by
 * the key id among the active and retired bronze keys) or of a legacy {@code enc:v1:}
 * value (no associated data, any key); text without the prefix passes through. A value
 * that fails authentication (tampered, moved to another column, another key) fails the
 * query with the same words as the Python implementation.
 */
public final class Decrypt implements UDF2<String, String, String> {
  private static final long serialVersionUID = 1L;
  private final byte[][] keys;
  private final String[] ids;
  private transient ThreadLocal<Cipher> ciphers;  // a Cipher is not thread-safe

  /** {@code keys}: the active bronze key first, then the retired ones. */
  public Decrypt(java.util.List<byte[]> keys) {
    this.keys = new byte[keys.size()][];
    this.ids = new String[keys.size()];
    for (int i = 0; i < this.keys.length; i++) {
      this.keys[i] = keys.get(i).clone();
      this.ids[i] = Bronze.keyId(this.keys[i]);
    }
  }

  private static RuntimeException failed(String aad) {
    return new SecurityException(
        "a value of "
            + aad
            + " failed authentication (tampered, copied from another column, or encrypted"
            + " under another key)");
  }

  @Override
  public String call(String token, String aad) throws Exception {
    if (token == null) {
      return null;
    }
    synchronized (this) {
      if (ciphers == null) {
        ciphers = ThreadLocal.withInitial(Bronze::gcm);
      }
    }
    Cipher cipher = ciphers.get();
    if (token.startsWith(Bronze.V2)) {
      String rest = token.substring(Bronze.V2.length());
      int colon = rest.indexOf(':');
      String kid = colon < 0 ? rest : rest.substring(0, colon);
      String body = colon < 0 ? "" : rest.substring(colon + 1);
      byte[] key = null;
      for (int i = 0; i < ids.length; i++) {
        if (ids[i].equals(kid)) {
          key = keys[i];
          break;
        }
      }
      if (key == null) {
        throw new SecurityException(
            "no bronze key with id "
                + kid
                + " is configured: this value was encrypted with a key that is neither"
                + " RISK_BRONZE_KEY nor listed in RISK_BRONZE_RETIRED_KEYS");
      }
      byte[] blob;
      try {
        blob = Base64.getDecoder().decode(body);
      } catch (IllegalArgumentException e) {
        throw failed(aad);
      }
      byte[] clear = Bronze.open(cipher, key, blob, Bronze.utf8(aad));
      if (clear == null) {
        throw failed(aad);
      }
      try {
        return Bronze.decodeUtf8(clear);
      } catch (CharacterCodingException e) {
        throw failed(aad);
      }
    }
    if (token.startsWith(Bronze.V1)) {
      byte[] blob = Base64.getMimeDecoder().decode(token.substring(Bronze.V1.length()));
      for (byte[] key : keys) {
        byte[] clear = Bronze.open(cipher, key, blob, null);
        if (clear != null) {
          return Bronze.decodeUtf8(clear);
        }
      }
      throw new SecurityException("a legacy enc:v1 value of " + aad + " matches no configured key");
    }
    return token;
  }

  @Override
  public String toString() {
    return "decrypt";
  }
}
