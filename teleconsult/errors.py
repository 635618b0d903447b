"""Domain errors. Views turn them into HTTP answers; nothing here knows about HTTP."""


class DomainError(Exception):
    """Base of every error a user can cause."""


class NotFound(DomainError):
    pass


class Forbidden(DomainError):
    pass


class Conflict(DomainError):
    pass


class InvalidInput(DomainError):
    pass


class RateLimited(DomainError):
    def __init__(self, retry_after: float):
        super().__init__(f"retry after {retry_after:.0f} s")
        self.retry_after = retry_after


class AuthenticationFailed(DomainError):
    pass
