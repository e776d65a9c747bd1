package io.github.riskcontrol.pii;

import java.util.List;
import org.apache.spark.sql.expressions.UserDefinedFunction;
import org.apache.spark.sql.functions;
import org.apache.spark.sql.types.DataTypes;

/**
 * The UDFs as Spark sees them, named as the plans show them. Built here, with the typed
 * Java overloads of {@code functions.udf}: from Python (Py4J) the untyped Scala one wins.
 */
public final class Udfs {
  private Udfs() {}

  public static UserDefinedFunction encrypt(byte[] key) {
    return functions.udf(new Encrypt(key), DataTypes.StringType).withName("encrypt");
  }

  /** {@code keys}: the active bronze key first, then the retired ones. */
  public static UserDefinedFunction decrypt(List<byte[]> keys) {
    return functions.udf(new Decrypt(keys), DataTypes.StringType).withName("decrypt");
  }

  public static UserDefinedFunction pseudonym(byte[] key) {
    return functions.udf(new Pseudonym(key), DataTypes.StringType).withName("pseudonym");
  }
}
