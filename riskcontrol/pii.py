"""Personal-information protection as Spark column expressions (no Python UDFs).

Silver and gold never hold a national ID, phone number or name in clear text: they
carry keyed HMAC-SHA256 pseudonyms (joinable, not reversible without the key) and
masked display values.
"""

from __future__ import annotations

import hashlib

from pyspark.sql import Column
from pyspark.sql import functions as F

_BLOCK = 64  # SHA-256 block size in bytes
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"


def hmac_sha256(col: Column | str, key: bytes) -> Column:
    """HMAC-SHA256 of a string column as 64 hex characters (RFC 2104, in Spark SQL)."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    ipad = bytearray(b ^ 0x36 for b in key)
    opad = bytearray(b ^ 0x5C for b in key)
    message = F.col(col) if isinstance(col, str) else col
    inner = F.unhex(F.sha2(F.concat(F.lit(ipad), message.cast("binary")), 256))
    return F.sha2(F.concat(F.lit(opad), inner), 256)


def hmac_hex(message: bytes, key: bytes) -> str:
    """The same HMAC-SHA256 as ``hmac_sha256``, in Python (for single values)."""
    import hmac

    return hmac.new(key, message, hashlib.sha256).hexdigest()


def mask_middle(col: Column | str, keep_start: int, keep_end: int) -> Column:
    """Keep the first and last characters, star the rest: 110***********1234."""
    c = F.col(col) if isinstance(col, str) else col
    hidden = F.greatest(F.length(c) - keep_start - keep_end, F.lit(0))
    return F.when(
        c.isNotNull(),
        F.concat(
            F.substring(c, 1, keep_start),
            F.repeat(F.lit("*"), hidden),
            F.when(F.length(c) > keep_start + keep_end, F.right(c, F.lit(keep_end))).otherwise(
                F.lit("")
            ),
        ),
    )


def mask_national_id(col: Column | str) -> Column:
    return mask_middle(col, 3, 4)


def mask_phone(col: Column | str) -> Column:
    return mask_middle(col, 3, 4)


def mask_name(col: Column | str) -> Column:
    """Surname kept, given name starred: 张** (a one-character name stays one star)."""
    c = F.col(col) if isinstance(col, str) else col
    return F.when(
        c.isNotNull(),
        F.concat(F.substring(c, 1, 1), F.repeat(F.lit("*"), F.greatest(F.length(c) - 1, F.lit(1)))),
    )


def national_id_check_char(first17: Column) -> Column:
    """ISO 7064 MOD 11-2 check character of the first 17 digits."""
    total = sum(
        (F.substring(first17, i + 1, 1).try_cast("int") * w for i, w in enumerate(ID_WEIGHTS)),
        F.lit(0),
    )
    return F.substring(F.lit(ID_CHECK_CHARS), (total % 11) + 1, 1)


def valid_national_id(col: Column | str) -> Column:
    """True for an 18-character PRC resident ID with a correct check character."""
    c = F.upper(F.col(col) if isinstance(col, str) else col)
    return c.rlike(r"^\d{17}[\dX]$") & (
        F.substring(c, 18, 1) == national_id_check_char(F.substring(c, 1, 17))
    )


def valid_mobile(col: Column | str) -> Column:
    """True for an 11-digit mainland mobile number (1[3-9]xxxxxxxxx)."""
    c = F.col(col) if isinstance(col, str) else col
    return c.rlike(r"^1[3-9]\d{9}$")


# --- authenticated encryption of sensitive fields in bronze ------------------------------
ENCRYPTED_PREFIX = "enc:v1:"


def _iv_key(key: bytes) -> bytes:
    """A key for deriving IVs, separate from the encryption key itself."""
    return hashlib.sha256(b"riskcontrol-bronze-iv\0" + key).digest()


def encrypt(col: Column | str, key: bytes) -> Column:
    """AES-256-GCM ciphertext of a string column, as ``enc:v1:<base64(iv|ct|tag)>``.

    GCM authenticates: a changed byte fails decryption instead of yielding other text.
    The 96-bit IV is an HMAC of the plaintext (a synthetic IV, as in AES-SIV), so equal
    values encrypt equally: re-landing the same row is recognised as unchanged and the
    quarantine stays idempotent. That reveals which rows hold equal values (as any
    joinable pseudonym does) and nothing else; an IV never repeats for two different
    values short of a 96-bit HMAC collision. Null stays null.
    """
    if len(key) != 32:
        raise ValueError("the bronze encryption key must be 32 bytes (64 hex characters)")
    c = F.col(col) if isinstance(col, str) else col
    c = c.cast("string")
    iv = F.substring(F.unhex(hmac_sha256(c, _iv_key(key))), 1, 12)
    ciphertext = F.aes_encrypt(c.cast("binary"), F.lit(key), F.lit("GCM"), F.lit("DEFAULT"), iv)
    return F.when(c.isNotNull(), F.concat(F.lit(ENCRYPTED_PREFIX), F.base64(ciphertext)))


def decrypt(col: Column | str, key: bytes) -> Column:
    """The clear text of an ``encrypt``-ed column; values without the prefix pass through.

    Passing through keeps tables landed before encryption readable; a value that carries
    the prefix but fails authentication (tampered, or another key) fails the query.
    """
    c = F.col(col) if isinstance(col, str) else col
    body = F.substring(c, len(ENCRYPTED_PREFIX) + 1, 1 << 30)
    clear = F.aes_decrypt(F.unbase64(body), F.lit(key), F.lit("GCM")).cast("string")
    return F.when(c.startswith(ENCRYPTED_PREFIX), clear).otherwise(c)


def encrypt_columns(df, columns, key: bytes):
    """``df`` with each of ``columns`` (those present) replaced by its ciphertext."""
    present = [c for c in columns if c in df.columns]
    return df.withColumns({c: encrypt(c, key) for c in present}) if present else df


def decrypt_columns(df, columns, key: bytes):
    """``df`` with each of ``columns`` (those present) decrypted in memory."""
    present = [c for c in columns if c in df.columns]
    return df.withColumns({c: decrypt(c, key) for c in present}) if present else df
