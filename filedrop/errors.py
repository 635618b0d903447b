"""The drop box's errors: what a request can do wrong, and one answer for every missing file.
filedrop/http.py maps each to an HTTP status."""


class DropError(Exception):
    """Base of the drop box's errors."""


class Gone(DropError):
    """Unknown, expired, deleted or used up: deliberately one answer for all."""


class TooBig(DropError):
    pass


class BadUpload(DropError):
    pass


class OffsetMismatch(DropError):
    def __init__(self, expected: int):
        super().__init__(f"upload offset must be at most {expected}")
        self.expected = expected


class NotOwner(DropError):
    pass


class OverQuota(DropError):
    """The box or the owner holds as many files or bytes as it may: nothing was reserved."""


class StorageFull(DropError):
    """The disk would go under the free-space floor: nothing was written past it."""


class StoreUnavailable(DropError):
    """The document store (an S3 bucket) could not be reached or refused: nothing was recorded."""
