"""Identity checks with the social security card at hotels, gates and counters.

The delta regulation makes the card (physical or electronic, Art. 2) an identity
credential for public services and hotel registration (Art. 9) and the key to
libraries, museums and scenic spots (Art. 12); it punishes forged, borrowed and
stolen cards (Art. 21) and asks for privacy protection and an audit trail (Art. 18);
see the regulation (docs/reference.md part R). A *scenario policy* says which checks a place
runs and which personal data it may keep:

* ``hotel``: genuine card (internal authentication, reference §C3.4), valid, not
  reported lost, SSN consistent; releases the full name and SSN for the registration
  record. The chip holds no usable photo (reference part M profile "Hotel
  identity": ``photo_on_card = False``), so the result tells the desk to match the face.
* ``gate``: valid card from an accepted region; releases only a masked name and an age
  band / concession category, never the SSN. Also takes an e-SSC QR code (Art. 2).
* ``counter``: as ``hotel`` plus PIN verification (regulation Art. 10).

Every check gives ``pass``/``fail``/``skipped`` with a reason code and bilingual text;
the card data comes from :class:`~sscard.applets.ssse.SsseReader` (EF05/EF06,
reference §C1.4-1.5) as a plain :class:`CardReading`, so the policy logic is
testable without a card. Each check is written to the :class:`AuditLog` (masked).

Modules (read in this order):

* :mod:`.reasons` - reason codes, operator notes and check names with their texts;
* :mod:`.policy` - :class:`ScenarioPolicy` / :class:`IdentityPolicy` and the policy file;
* :mod:`.reading` - :class:`CardReading` and :func:`read_card` (the card side);
* :mod:`.result` - :class:`CheckResult` / :class:`IdentityResult` and their output;
* :mod:`.check` - :class:`IdentityCheck`, which runs a policy and audits it.
"""

from sscard.applets.identity.check import IdentityCheck
from sscard.applets.identity.check import age_on as age_on
from sscard.applets.identity.policy import DEFAULT_AGE_BANDS as DEFAULT_AGE_BANDS
from sscard.applets.identity.policy import DEFAULT_SCENARIOS as DEFAULT_SCENARIOS
from sscard.applets.identity.policy import POLICY_SCHEMA as POLICY_SCHEMA
from sscard.applets.identity.policy import RELEASABLE as RELEASABLE
from sscard.applets.identity.policy import AgeBand, IdentityPolicy, ScenarioPolicy
from sscard.applets.identity.policy import Kind as Kind
from sscard.applets.identity.policy import RegionRule as RegionRule
from sscard.applets.identity.reading import CardReading, read_card
from sscard.applets.identity.reading import PinOutcome as PinOutcome
from sscard.applets.identity.reasons import CARD_CHECKS as CARD_CHECKS
from sscard.applets.identity.reasons import CHECK_NAMES as CHECK_NAMES
from sscard.applets.identity.reasons import NOTES as NOTES
from sscard.applets.identity.reasons import QR_CHECKS as QR_CHECKS
from sscard.applets.identity.reasons import REASONS as REASONS
from sscard.applets.identity.result import CHINA_TZ as CHINA_TZ
from sscard.applets.identity.result import CheckResult, IdentityResult
from sscard.applets.identity.result import Status as Status

# The same ``__all__`` as the single module had; the ``X as X`` names above are the
# module's other public names, still importable from here.
__all__ = [
    "AgeBand",
    "CardReading",
    "CheckResult",
    "IdentityCheck",
    "IdentityPolicy",
    "IdentityResult",
    "ScenarioPolicy",
    "read_card",
]
