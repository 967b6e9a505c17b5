"""Card cryptography: DES/3DES/SM4 blocks, ISO 9797-1 MACs, purse and SSSE keys, SM3, SM2.

Symmetric primitives run on pyca/cryptography (
reference §N5); SM2 sits behind :class:`Sm2Backend` (§N6). The purse
module follows reference §P4, the SSSE module reference §C3; where
those are silent, both follow the documents' "sscard profile" sections.
"""

# purse and ssse both define diversify(): callers use the modules, e.g. purse.diversify.
from sscard.crypto import purse, ssse
from sscard.crypto.ciphers import (
    BlockAlgorithm,
    BlockCipher,
    block_cipher,
    des_ecb_decrypt,
    des_ecb_encrypt,
    sm4_ecb_decrypt,
    sm4_ecb_encrypt,
    xor_bytes,
)
from sscard.crypto.errors import (
    CryptoError,
    DataLengthError,
    KeyLengthError,
    PaddingError,
    Sm2KeyError,
    UnsupportedAlgorithm,
)
from sscard.crypto.mac import mac_alg1, mac_alg3, pad_m2, pboc_mac, unpad_m2
from sscard.crypto.purse import Algorithm as PurseAlgorithm
from sscard.crypto.sm2 import (
    DEFAULT_UID,
    PurePythonSm2,
    Sm2Backend,
    TongsuoSm2,
    default_backend,
    public_key_from_private,
)
from sscard.crypto.sm3 import hmac_sm3, sm3
from sscard.crypto.ssse import SsseAlgorithm

__all__ = [
    "DEFAULT_UID",
    "BlockAlgorithm",
    "BlockCipher",
    "CryptoError",
    "DataLengthError",
    "KeyLengthError",
    "PaddingError",
    "PurePythonSm2",
    "PurseAlgorithm",
    "Sm2Backend",
    "Sm2KeyError",
    "SsseAlgorithm",
    "TongsuoSm2",
    "UnsupportedAlgorithm",
    "block_cipher",
    "default_backend",
    "des_ecb_decrypt",
    "des_ecb_encrypt",
    "hmac_sm3",
    "mac_alg1",
    "mac_alg3",
    "pad_m2",
    "pboc_mac",
    "public_key_from_private",
    "purse",
    "sm3",
    "sm4_ecb_decrypt",
    "sm4_ecb_encrypt",
    "ssse",
    "unpad_m2",
    "xor_bytes",
]
