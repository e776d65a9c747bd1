"""Personal-information protection: keyed pseudonyms, masks and authenticated encryption.

Silver and gold never hold a national ID, phone number or name in clear text: they
carry keyed HMAC-SHA256 pseudonyms (joinable, not reversible without the key) and
masked display values. Bronze keeps every column that is not a key, a timestamp or
provenance encrypted (AES-256-GCM).

**No key ever enters a Spark expression.** Spark records literal values in query plans
(the UI, event logs) and Delta records the predicates of DELETE, UPDATE and MERGE in
its log, so a key passed as ``F.lit(key)`` ends up in files anyone with read access to
the lakehouse can open. Encryption, decryption and HMAC therefore run in Spark UDFs
of the project's own jar (``infra/jvm``, built by ``make jars``) whose objects hold the
keys: Spark serializes them into its tasks, and the plan shows the function's name and
its non-secret arguments (the column, the associated data), never a key. They run in
the JVM, next to the data, with no Python worker in between; the plain-Python
``encrypt_text``/``decrypt_text`` below are the same cipher for single values on the
driver, and the tests check the two give the same bytes.

Ciphertexts read ``enc:v2:<kid>:<base64(nonce | ciphertext | tag)>``:

* ``kid`` names the key (a truncated hash of it, not the key), so keys can be rotated:
  old ciphertexts stay readable while their key is listed in
  ``RISK_BRONZE_RETIRED_KEYS``, and ``riskctl rotate-keys`` re-encrypts them;
* the associated data binds ``table.column``: a ciphertext copied into another column
  or table fails authentication instead of decrypting there;
* the nonce is an HMAC of the associated data and the plaintext under a key derived
  for that purpose (a synthetic IV, as in AES-SIV), so equal values in the same column
  encrypt equally: re-landing the same row is recognised as unchanged and the quarantine
  stays idempotent. That reveals which rows of a column hold equal values (as any
  joinable pseudonym does) and nothing else.

``enc:v1:`` values (written by earlier versions, no key id, no associated data) are
still decrypted with any configured key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import threading
from dataclasses import dataclass
from functools import lru_cache

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

_BLOCK = 64  # SHA-256 block size in bytes
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK_CHARS = "10X98765432"

ENCRYPTED_PREFIX = "enc:v2:"
LEGACY_PREFIX = "enc:v1:"
ANY_PREFIX = "enc:"
# Field metadata marking an encrypted column: {"riskcontrol_encrypted": {"aad", "type"}}.
META = "riskcontrol_encrypted"


# --- keys --------------------------------------------------------------------------------
def key_id(key: bytes) -> str:
    """A short public name of a bronze key (a truncated hash: it does not reveal the key)."""
    return hashlib.sha256(b"riskcontrol-kid\0" + key).hexdigest()[:8]


def _iv_key(key: bytes) -> bytes:
    """A key for deriving nonces, separate from the encryption key itself."""
    return hashlib.sha256(b"riskcontrol-bronze-iv\0" + key).digest()


class DecryptionError(ValueError):
    """A ciphertext failed authentication: tampered, moved to another column, or other key."""


@dataclass(frozen=True)
class Keyring:
    """The pseudonym key and the bronze keys (the active one first, then retired ones)."""

    pii: bytes
    bronze: tuple[bytes, ...]

    @property
    def active(self) -> str:
        return key_id(self.bronze[0])

    def by_id(self, kid: str) -> bytes:
        for key in self.bronze:
            if key_id(key) == kid:
                return key
        raise DecryptionError(
            f"no bronze key with id {kid} is configured: this value was encrypted with a key "
            "that is neither RISK_BRONZE_KEY nor listed in RISK_BRONZE_RETIRED_KEYS"
        )

    def fingerprint(self) -> str:
        """A hash of every key: tells keyrings apart without holding them."""
        text = json.dumps({"pii": self.pii.hex(), "bronze": [k.hex() for k in self.bronze]})
        return hashlib.sha256(text.encode()).hexdigest()

    @classmethod
    def from_settings(cls, settings) -> Keyring:
        return cls(settings.pii_secret(), (settings.bronze_secret(), *settings.retired_secrets()))


_RING_LOCK = threading.Lock()


@lru_cache(maxsize=16)
def _aead(key: bytes):
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


# --- plain Python: single values, files --------------------------------------------------
def hmac_hex(message: bytes, key: bytes) -> str:
    """HMAC-SHA256 of ``message`` as 64 hex characters."""
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _seal(ring: Keyring, value: str, aad: str) -> str:
    key = ring.bronze[0]
    data = value.encode("utf-8")
    ad = aad.encode("utf-8")
    nonce = hmac.digest(_iv_key(key), ad + b"\0" + data, "sha256")[:12]
    blob = nonce + _aead(key).encrypt(nonce, data, ad)
    return f"{ENCRYPTED_PREFIX}{key_id(key)}:{base64.b64encode(blob).decode('ascii')}"


def _open(ring: Keyring, token: str, aad: str) -> str:
    from cryptography.exceptions import InvalidTag

    if token.startswith(ENCRYPTED_PREFIX):
        kid, _, body = token[len(ENCRYPTED_PREFIX) :].partition(":")
        key = ring.by_id(kid)
        try:
            blob = base64.b64decode(body, validate=True)
            return _aead(key).decrypt(blob[:12], blob[12:], aad.encode("utf-8")).decode("utf-8")
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise DecryptionError(
                f"a value of {aad} failed authentication (tampered, copied from another "
                "column, or encrypted under another key)"
            ) from exc
    if token.startswith(LEGACY_PREFIX):
        blob = base64.b64decode(token[len(LEGACY_PREFIX) :])
        for key in ring.bronze:
            try:
                return _aead(key).decrypt(blob[:12], blob[12:], None).decode("utf-8")
            except InvalidTag:
                continue
        raise DecryptionError(f"a legacy enc:v1 value of {aad} matches no configured key")
    return token


def encrypt_text(text: str | None, aad: str, settings) -> str | None:
    """``text`` encrypted under the active bronze key (the same format as ``encrypt``)."""
    return None if text is None else _seal(Keyring.from_settings(settings), text, aad)


def decrypt_text(token: str | None, aad: str, settings) -> str | None:
    """The clear text of an ``encrypt_text`` value; text without the prefix passes through."""
    return None if token is None else _open(Keyring.from_settings(settings), token, aad)


def is_encrypted(value: object) -> bool:
    return isinstance(value, str) and value.startswith(ANY_PREFIX)


# --- the Spark functions: the JVM implementation (infra/jvm), keys inside the UDF objects ---
_UDFS: dict[tuple[int, str], dict[str, object]] = {}


def _udfs(settings) -> dict[str, object]:
    """Spark UDFs (``io.github.riskcontrol.pii``, the project's jar) holding ``settings``'
    keys: ``encrypt`` (the active bronze key), ``decrypt`` (every bronze key) and
    ``pseudonym`` (the pseudonym key).

    The keys are fields of the Java UDF objects, which Spark serializes into its tasks
    (as the Python UDFs carried them in their worker environment): the plan and the
    Delta log show the function's name and its non-secret arguments, never a key. The
    JVM gives the same bytes as ``_seal``/``_open`` above (the tests compare them) and
    spares every value a trip through a Python worker.
    """
    from pyspark import SparkContext

    ring = Keyring.from_settings(settings)
    sc = SparkContext._active_spark_context
    if sc is None:
        raise RuntimeError("personal-data functions need an active Spark session")
    slot = (id(sc), ring.fingerprint())
    with _RING_LOCK:
        made = _UDFS.get(slot)
        if made is None:
            udfs = sc._jvm.io.github.riskcontrol.pii.Udfs
            made = {
                "encrypt": udfs.encrypt(bytearray(ring.bronze[0])),
                "decrypt": udfs.decrypt([bytearray(k) for k in ring.bronze]),
                "pseudonym": udfs.pseudonym(bytearray(ring.pii)),
            }
            _UDFS[slot] = made
    return made


def _apply(judf, *cols: Column) -> Column:
    """A Java ``UserDefinedFunction`` applied to PySpark columns."""
    from pyspark import SparkContext
    from pyspark.sql.classic.column import Column as ClassicColumn
    from pyspark.sql.classic.column import _to_java_column, _to_seq

    sc = SparkContext._active_spark_context
    return ClassicColumn(judf.apply(_to_seq(sc, list(cols), _to_java_column)))


def _c(col: Column | str) -> Column:
    return F.col(col) if isinstance(col, str) else col


def pseudonym(col: Column | str, settings) -> Column:
    """Keyed HMAC-SHA256 (RFC 2104) of a string column as 64 hex characters."""
    u = _udfs(settings)
    return _apply(u["pseudonym"], _c(col).cast("string"))


def encrypt(col: Column | str, aad: str, settings) -> Column:
    """AES-256-GCM ciphertext ``enc:v2:<kid>:...`` of a column (cast to string); null stays null."""
    u = _udfs(settings)
    return _apply(u["encrypt"], _c(col).cast("string"), F.lit(aad))


def decrypt(col: Column | str, aad: str, settings) -> Column:
    """The clear text of an ``encrypt``-ed column; values without the prefix pass through.

    Passing through keeps values landed before encryption readable; a value that carries
    the prefix but fails authentication (tampered, another column, unknown key) fails
    the query.
    """
    u = _udfs(settings)
    return _apply(u["decrypt"], _c(col).cast("string"), F.lit(aad))


def _serialized(field: T.StructField) -> Column:
    c = F.col(f"`{field.name}`")
    if isinstance(field.dataType, T.StringType):
        return c
    if isinstance(field.dataType, (T.ArrayType, T.MapType, T.StructType)):
        return F.to_json(c)
    return c.cast("string")


def encrypt_columns(df: DataFrame, columns, table: str, settings) -> DataFrame:
    """``df`` with each of ``columns`` (those present) replaced by its ciphertext.

    A non-string column is serialized first (JSON for arrays, maps and structs); its
    type and associated data are kept in the field's metadata, so ``decrypt_columns``
    gives back the same values with the same type.
    """
    fields = {f.name: f for f in df.schema.fields}
    present = [c for c in dict.fromkeys(columns) if c in fields]
    if not present:
        return df
    out = {}
    for name in present:
        field = fields[name]
        if field.metadata.get(META):
            continue  # already encrypted
        aad = f"{table}.{name}"
        meta = {**field.metadata, META: {"aad": aad, "type": field.dataType.simpleString()}}
        out[name] = encrypt(_serialized(field), aad, settings).alias(name, metadata=meta)
    return df.withColumns(out) if out else df


def encrypted_columns(df: DataFrame) -> list[str]:
    """The columns whose metadata marks them as encrypted."""
    return [f.name for f in df.schema.fields if f.metadata.get(META)]


def decrypt_columns(df: DataFrame, table: str, settings, columns=None) -> DataFrame:
    """``df`` with its encrypted columns (or ``columns``) decrypted in memory, typed back."""
    fields = {f.name: f for f in df.schema.fields}
    names = encrypted_columns(df) if columns is None else [c for c in columns if c in fields]
    if not names:
        return df
    out = {}
    for name in names:
        meta = fields[name].metadata.get(META) or {}
        clear = decrypt(f"`{name}`", meta.get("aad", f"{table}.{name}"), settings)
        type_name = meta.get("type", "string")
        if type_name == "string":
            typed = clear
        elif type_name.startswith(("array<", "map<", "struct<")):
            typed = F.from_json(clear, type_name)
        else:
            typed = clear.cast(type_name)
        rest = {k: v for k, v in fields[name].metadata.items() if k != META}
        out[name] = typed.alias(name, metadata=rest)
    return df.withColumns(out)


def key_material(settings) -> list[tuple[str, bytes]]:
    """Every form of every configured key an attacker could find in a file.

    Hex (both cases), raw bytes and base64 of each key, and the HMAC pads (the key
    XOR 0x36 / 0x5c padded to the block size) in hex: what an implementation that puts
    the key into a Spark expression leaves in plans and Delta logs.
    """
    found: list[tuple[str, bytes]] = []

    def forms(label: str, key: bytes) -> None:
        padded = (hashlib.sha256(key).digest() if len(key) > _BLOCK else key).ljust(_BLOCK, b"\0")
        found.extend(
            [
                (f"{label}:hex", key.hex().encode()),
                (f"{label}:HEX", key.hex().upper().encode()),
                (f"{label}:base64", base64.b64encode(key)),
                (f"{label}:raw", key),
                (f"{label}:ipad", bytes(b ^ 0x36 for b in padded).hex().encode()),
                (f"{label}:opad", bytes(b ^ 0x5C for b in padded).hex().encode()),
                (f"{label}:iv-key", _iv_key(key).hex().encode()),
            ]
        )

    ring = Keyring.from_settings(settings)
    forms("pii_key", ring.pii)
    for i, key in enumerate(ring.bronze):
        forms("bronze_key" if i == 0 else f"bronze_retired_key_{i}", key)
    return found


# --- masks and checks (pure expressions: no key) -----------------------------------------
def mask_middle(col: Column | str, keep_start: int, keep_end: int) -> Column:
    """Keep the first and last characters, star the rest: 138****5678.

    A value too short to keep anything of (an invalid ID, a truncated phone) is starred
    entirely: showing it whole would show exactly what the mask hides.
    """
    c = _c(col)
    n = F.length(c)
    kept = F.concat(
        F.substring(c, 1, keep_start),
        F.repeat(F.lit("*"), n - keep_start - keep_end),
        F.right(c, F.lit(keep_end)) if keep_end else F.lit(""),
    )
    return (
        F.when(c.isNull(), F.lit(None))
        .when(n <= keep_start + keep_end, F.repeat(F.lit("*"), n))
        .otherwise(kept)
    )


def mask_national_id(col: Column | str) -> Column:
    """Last four characters only: the first six are the region, the next eight the birth
    date, and with those shown the ID could be rebuilt."""
    return mask_middle(col, 0, 4)


def mask_phone(col: Column | str) -> Column:
    return mask_middle(col, 3, 4)


def mask_name(col: Column | str) -> Column:
    """Surname kept, given name starred: 张** (a one-character name stays one star)."""
    c = _c(col)
    return F.when(
        c.isNotNull(),
        F.concat(F.substring(c, 1, 1), F.repeat(F.lit("*"), F.greatest(F.length(c) - 1, F.lit(1)))),
    )


# Identifiers inside free text (notes, news, penalty reasons, fields a source adds): the
# ID keeps its last 4 characters, a mobile its first 3 and last 4, a card its last 4, an
# e-mail its first character and domain. A number inside a longer run of digits is left
# alone (an amount, a longer reference); one glued to letters is masked all the same
# (A13812345678B may be a reference or a phone: the mask errs on the side of the person).
# Full-width digits must be folded first.
_TEXT_MASKS = (
    (r"(?<!\d)\d{14}(\d{3}[0-9Xx])(?!\d)", "**************$1"),
    (r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)", "$1****$2"),
    (r"(?<!\d)\d{12,15}(\d{4})(?!\d)", "************$1"),  # bank cards: 16-19 digits
    # written in groups: 6222 0212 3456 7890 123, 138 1234 5678
    (r"(?<![\d-])\d{4}(?:[ -]\d{4}){3}(?:[ -]?\d{1,3})?(?![\d-])", "**** **** **** ****"),
    (r"(?<![\d-])(1[3-9]\d)[ -]\d{4}[ -](\d{4})(?![\d-])", "$1 **** $2"),
    (r"(?<![\w.+-])([A-Za-z0-9])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)", "$1***@$2"),
)


def mask_identifiers(col: Column | str) -> Column:
    """Free text with national IDs, mobile numbers, bank cards and e-mails masked."""
    out = _c(col)
    for pattern, replacement in _TEXT_MASKS:
        out = F.regexp_replace(out, pattern, replacement)
    return out


def national_id_check_char(first17: Column) -> Column:
    """ISO 7064 MOD 11-2 check character of the first 17 digits."""
    total = sum(
        (F.substring(first17, i + 1, 1).try_cast("int") * w for i, w in enumerate(ID_WEIGHTS)),
        F.lit(0),
    )
    return F.substring(F.lit(ID_CHECK_CHARS), (total % 11) + 1, 1)


def valid_national_id(col: Column | str) -> Column:
    """True for an 18-character PRC resident ID with a correct check character."""
    c = F.upper(_c(col))
    return c.rlike(r"^\d{17}[\dX]$") & (
        F.substring(c, 18, 1) == national_id_check_char(F.substring(c, 1, 17))
    )


def valid_mobile(col: Column | str) -> Column:
    """True for an 11-digit mainland mobile number (1[3-9]xxxxxxxxx)."""
    return _c(col).rlike(r"^1[3-9]\d{9}$")
