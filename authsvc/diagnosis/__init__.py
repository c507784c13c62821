"""``authsvc doctor``: checks of a running set-up (registry, realm, tokens, clocks,
notifications), each a verdict with one plain sentence. Over the pure domain, the settings and
the registry client; no Flask and no database (the command hands in what they know)."""

from authsvc.diagnosis.checks import Notifications as Notifications
from authsvc.diagnosis.checks import Setup as Setup
from authsvc.diagnosis.checks import run_checks as run_checks
from authsvc.diagnosis.findings import Finding as Finding
from authsvc.diagnosis.findings import Status as Status
from authsvc.diagnosis.findings import passed as passed
