"""The refusals of accounts, sign-in and bidders' keys, each with its status and type."""

from bidding.errors import Conflict, DomainError, Forbidden, NotFound, Unauthorized, Unprocessable


class RegistrationUnavailable(DomainError):
    """503: registration needs a way to send messages, and this platform has none."""

    status_code = 503
    type = "registration_unavailable"


class ActivationInvalid(NotFound):
    """The activation link is unknown, already used or expired."""

    type = "activation_invalid"


class InvalidCredentials(Unauthorized):
    """Not the right email and password."""

    type = "invalid_credentials"


class CsrfFailed(Forbidden):
    """A cookie session's request without its CSRF token."""

    type = "csrf_failed"


class EmailTaken(Conflict):
    """An account with this email exists."""

    type = "email_taken"


class OrganizationRegistered(Conflict):
    """An organization with this credit code exists."""

    type = "organization_registered"


class OrganizationMismatch(Conflict):
    """The organization's code and name name different organizations."""

    type = "organization_mismatch"


class OrganizationLookalike(Conflict):
    """The name looks the same as a registered organization's."""

    type = "organization_lookalike"


class InvalidRecipient(Unprocessable):
    """Not an X25519 age recipient."""

    type = "invalid_recipient"


class NoKey(Conflict):
    """The organization has registered no key."""

    type = "no_key"


class KeyUnusable(Conflict):
    """The registered key cannot be sealed to."""

    type = "key_unusable"


class NoChallenge(Conflict):
    """No challenge was asked, or it expired."""

    type = "no_challenge"


class WrongAnswer(Unprocessable):
    """Not the sealed value of the challenge."""

    type = "wrong_answer"
