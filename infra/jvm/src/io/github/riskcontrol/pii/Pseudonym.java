package io.github.riskcontrol.pii;

import javax.crypto.Mac;
import org.apache.spark.sql.api.java.UDF1;

/** {@code pseudonym(value)}: keyed HMAC-SHA256 (RFC 2104) of a string as 64 hex characters. */
public final class Pseudonym implements UDF1<String, String> {
  private static final long serialVersionUID = 1L;
  private final byte[] key;
  private transient ThreadLocal<Mac> mac;  // a Mac is not thread-safe

  public Pseudonym(byte[] key) {
    this.key = key.clone();
  }

  @Override
  public String call(String value) throws Exception {
    if (value == null) {
      return null;
    }
    synchronized (this) {
      if (mac == null) {
        mac = ThreadLocal.withInitial(() -> Bronze.hmac(key));
      }
    }
    return Bronze.hex(mac.get().doFinal(Bronze.utf8(value)));
  }

  @Override
  public String toString() {
    return "pseudonym";
  }
}
