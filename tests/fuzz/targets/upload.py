"""The bid upload's header check, against what the opening and the header download read."""

import contextlib
import io

from bidding.crypto import age
from bidding.errors import Unprocessable
from bidding.tenders import uploads
from tests.fuzz.keys import IDENTITY, NOBODY, STRANGER


def age_upload_header(data: bytes) -> None:
    """What the bid upload accepts as a header, the opening and the header download can read."""
    try:
        length = uploads._check_header(data)
    except Unprocessable as exc:
        assert exc.type == "not_sealed"
        length = -1
    # The same bytes cut in two pieces: the outcome cannot depend on where the cut fell.
    for cut in {len(data) // 3, len(data) // 2}:
        try:
            early = uploads._check_header(data[:cut])
        except Unprocessable:
            assert length == -1, f"a prefix of {cut} bytes was refused, the whole file not"
        else:
            if length is not None and 0 <= length <= cut:
                assert early == length, "the header ends elsewhere in a prefix"
    if length is None or length < 0:
        return
    header = age.read_header(io.BytesIO(data))  # the opening's reader: must not fail
    assert len(header.encode()) == length
    assert age.header_length(data[: age.MAX_HEADER_BYTES + 1]) == length  # the download's
    # The opening tries its identities: it gets a file key, or no match, or a MAC that fails
    # (an altered header); never a header it cannot read.
    for identity in (IDENTITY, STRANGER, NOBODY):
        with contextlib.suppress(age.NoIdentityMatchError, age.HeaderMacError):
            header.file_key([identity])
