package io.github.riskcontrol.pii;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import javax.crypto.Cipher;
import javax.crypto.Mac;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * The bronze cipher of riskcontrol.core.pii, in the JVM: AES-256-GCM with a synthetic IV
 * (an HMAC-SHA256 of the associated data and the plaintext under a key derived for that
 * purpose), written {@code enc:v2:<kid>:<base64(nonce | ciphertext | tag)>}. It gives the
 * same bytes as the Python implementation ({@code _seal} / {@code _open}), which stays
 * the reference for single values on the driver.
 *
 * <p>Keys are held by the UDF objects that Spark serializes into its tasks, as the Python
 * UDFs carried them in their worker environment: no key is ever an expression literal,
 * so none reaches a plan or a Delta log. Nothing here prints or logs a key.
 */
final class Bronze {
  static final String V2 = "enc:v2:";
  static final String V1 = "enc:v1:";
  static final String ANY = "enc:";
  private static final int NONCE = 12;
  private static final int TAG_BITS = 128;

  private Bronze() {}

  static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  static byte[] sha256(byte[] prefix, byte[] key) {
    try {
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      md.update(prefix);
      md.update(key);
      return md.digest();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("SHA-256 is not available", e);
    }
  }

  /** riskcontrol.core.pii.key_id: a short public name of a key (a truncated hash). */
  static String keyId(byte[] key) {
    return hex(sha256(utf8("riskcontrol-kid\0"), key)).substring(0, 8);
  }

  static byte[] ivKey(byte[] key) {
    return sha256(utf8("riskcontrol-bronze-iv\0"), key);
  }

  static String hex(byte[] bytes) {
    char[] digits = "0123456789abcdef".toCharArray();
    char[] out = new char[bytes.length * 2];
    for (int i = 0; i < bytes.length; i++) {
      out[2 * i] = digits[(bytes[i] >> 4) & 0xf];
      out[2 * i + 1] = digits[bytes[i] & 0xf];
    }
    return new String(out);
  }

  static Mac hmac(byte[] key) {
    try {
      Mac mac = Mac.getInstance("HmacSHA256");
      mac.init(new SecretKeySpec(key, "HmacSHA256"));
      return mac;
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("HMAC-SHA256 is not available", e);
    }
  }

  static Cipher gcm() {
    try {
      return Cipher.getInstance("AES/GCM/NoPadding");
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("AES-GCM is not available", e);
    }
  }

  /** nonce | ciphertext | tag of {@code data} under {@code key}, nonce from {@code ivMac}. */
  static byte[] seal(Cipher cipher, Mac ivMac, byte[] key, byte[] data, byte[] aad)
      throws GeneralSecurityException {
    ivMac.reset();
    ivMac.update(aad);
    ivMac.update((byte) 0);
    ivMac.update(data);
    byte[] nonce = java.util.Arrays.copyOf(ivMac.doFinal(), NONCE);
    cipher.init(Cipher.ENCRYPT_MODE, new SecretKeySpec(key, "AES"), new GCMParameterSpec(TAG_BITS, nonce));
    cipher.updateAAD(aad);
    byte[] sealed = cipher.doFinal(data);
    return ByteBuffer.allocate(NONCE + sealed.length).put(nonce).put(sealed).array();
  }

  /** The plaintext of nonce | ciphertext | tag, or null when it fails authentication. */
  static byte[] open(Cipher cipher, byte[] key, byte[] blob, byte[] aad) {
    if (blob.length < NONCE + TAG_BITS / 8) {
      return null;
    }
    try {
      cipher.init(
          Cipher.DECRYPT_MODE,
          new SecretKeySpec(key, "AES"),
          new GCMParameterSpec(TAG_BITS, blob, 0, NONCE));
      if (aad != null) {
        cipher.updateAAD(aad);
      }
      return cipher.doFinal(blob, NONCE, blob.length - NONCE);
    } catch (GeneralSecurityException e) {
      return null;
    }
  }

  /** Strict UTF-8, as Python's bytes.decode: malformed text is an error, not U+FFFD. */
  static String decodeUtf8(byte[] bytes) throws CharacterCodingException {
    return StandardCharsets.UTF_8
        .newDecoder()
        .onMalformedInput(CodingErrorAction.REPORT)
        .onUnmappableCharacter(CodingErrorAction.REPORT)
        .decode(ByteBuffer.wrap(bytes))
        .toString();
  }
}
