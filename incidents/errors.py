"""The errors of the breach register; each is a user mistake the CLI reports with exit code 2."""

from __future__ import annotations

from compliance.errors import ComplianceError


class IncidentError(ComplianceError):
    """A breach-register request that cannot be carried out as asked. Nothing has been stored."""


class InvalidInput(IncidentError):
    """A value is missing, malformed or impossible (a future date, a negative count, an unknown name)."""


class IncidentNotFound(IncidentError):
    """No incident has the given id."""


class StepSkipped(IncidentError):
    """The incident is not at the step the request needs (e.g. a notification without a decision)."""


class PersonalDataFound(IncidentError):
    """Free text looks like it holds personal data of the people concerned (BSN, e-mail address, IBAN)."""
