"""Every `-o` of the command line writes without destroying what it writes to.

A regular file (or a new one) is replaced whole, only once complete; a character device, a FIFO
or a terminal is written in place; a symbolic link is followed to its final target. Real
processes, real device nodes, FIFOs and pseudo-terminals, all in the test's own folder; the one
exception, /dev/null, is written only after a device node of the test's own survived the same
command.
"""

import json
import os
import shutil
import stat
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bidding.crypto import age
from tests.support.platform import FORM, sign_in
from tests.support.processes import bidding as run_bidding
from tests.support.processes import error_line
from tests.tenders.conftest import TENDERS, tender_body

pytestmark = pytest.mark.process

CHUNK = age.CHUNK_SIZE
ROOT = os.geteuid() == 0
# Without CAP_DAC_OVERRIDE, root meets the folder's mode bits as any owner would.
NO_OVERRIDE = ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--"]


def bidding(
    *args: str, stdin: bytes = b"", cwd: Path | None = None, confined: bool = False
) -> subprocess.CompletedProcess[bytes]:
    """Run the command; confined, without the capabilities that bypass file permissions."""
    prefix: list[str] = []
    if confined and ROOT:
        if shutil.which("setpriv") is None:
            pytest.skip("setpriv (util-linux) is needed to drop root's capabilities")
        prefix = NO_OVERRIDE
    return run_bidding(*args, stdin=stdin, cwd=cwd, prefix=prefix)


@dataclass
class Writer:
    """A command that writes its result to -o, and how to recognize a complete result."""

    name: str
    args: Callable[[Path], list[str]]
    complete: Callable[[bytes], bool]


@pytest.fixture
def plain(tmp_path: Path) -> bytes:
    data = os.urandom(2 * CHUNK + 7)  # three chunks: several writes
    (tmp_path / "bid.bin").write_bytes(data)
    return data


@pytest.fixture
def identity(tmp_path: Path) -> age.Identity:
    key = age.Identity.generate()
    (tmp_path / "bidder.key").write_text(f"{key}\n")
    return key


@pytest.fixture(params=["seal", "unseal", "keygen"])
def writer(
    request: pytest.FixtureRequest, tmp_path: Path, plain: bytes, identity: age.Identity
) -> Writer:
    sealed = tmp_path / "bid.age"
    sealed.write_bytes(age.seal_bytes(plain, [identity.recipient]))

    def unseals_to_plain(data: bytes) -> bool:
        try:
            return age.unseal_bytes(data, [identity]) == plain
        except age.AgeError:
            return False

    def holds_a_key(data: bytes) -> bool:
        try:
            return len(age.parse_identities(data.decode())) == 1
        except (age.AgeError, UnicodeDecodeError):
            return False

    recipient, key, source = str(identity.recipient), str(tmp_path / "bidder.key"), str(sealed)
    writers = {
        "seal": Writer(
            "seal",
            lambda out: ["seal", "-r", recipient, "-o", str(out), str(tmp_path / "bid.bin")],
            unseals_to_plain,
        ),
        "unseal": Writer(
            "unseal", lambda out: ["unseal", "-i", key, "-o", str(out), source], plain.__eq__
        ),
        "keygen": Writer("keygen", lambda out: ["keygen", "-o", str(out)], holds_a_key),
    }
    return writers[request.param]


def null_twin(folder: Path) -> Path:
    """A character device node like /dev/null in the test's own folder."""
    null = os.stat("/dev/null")
    node = folder / "null"
    os.mknod(node, stat.S_IFCHR | stat.S_IMODE(null.st_mode), null.st_rdev)
    return node


def assert_still_null(path: Path, before: os.stat_result) -> None:
    after = os.stat(path, follow_symlinks=False)
    assert stat.S_ISCHR(after.st_mode), f"{path} is no longer a character device"
    assert (after.st_rdev, after.st_mode) == (before.st_rdev, before.st_mode)


def write_to_dev_null(
    run: Callable[[Path], subprocess.CompletedProcess[bytes]], tmp_path: Path
) -> None:
    """Run the command against a device node of the test's own, then, if it survived, /dev/null."""
    if ROOT:
        node = null_twin(tmp_path)
        before = os.stat(node)
        rehearsal = run(node)
        assert rehearsal.returncode == 0, rehearsal.stderr
        if not stat.S_ISCHR(os.stat(node, follow_symlinks=False).st_mode):
            pytest.fail("the command replaced a character device: /dev/null is left alone")
        assert_still_null(node, before)
    before = os.stat("/dev/null")
    result = run(Path("/dev/null"))
    assert result.returncode == 0, result.stderr
    assert_still_null(Path("/dev/null"), before)


def through_a_fifo(
    fifo: Path, run: Callable[[], subprocess.CompletedProcess[bytes]]
) -> tuple[subprocess.CompletedProcess[bytes], bytes]:
    """Run the command writing to a new FIFO that another process reads; what that one read."""
    os.mkfifo(fifo)
    copy = fifo.with_name(f"{fifo.name}.read")
    # Into a file, not a pipe: a full pipe would stop the reader, and with it the writer.
    with copy.open("wb") as received:
        reader = subprocess.Popen(["cat", str(fifo)], stdout=received)
    try:
        result = run()
        if not stat.S_ISFIFO(os.stat(fifo).st_mode):
            reader.kill()  # replaced: the reader would wait for ever
        reader.wait(timeout=60)
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()
    return result, copy.read_bytes()


def no_temporary_files(folder: Path) -> bool:
    return not any(path.name.endswith(".part") for path in folder.iterdir())


class TestDevices:
    def test_dev_null_stays_a_character_device(self, writer: Writer, tmp_path: Path) -> None:
        write_to_dev_null(lambda out: bidding(*writer.args(out)), tmp_path)
        assert no_temporary_files(tmp_path)

    def test_a_fifo_is_written_in_place_and_its_reader_gets_everything(
        self, writer: Writer, tmp_path: Path
    ) -> None:
        fifo = tmp_path / "out.fifo"
        result, received = through_a_fifo(fifo, lambda: bidding(*writer.args(fifo)))
        assert result.returncode == 0, result.stderr
        assert stat.S_ISFIFO(os.stat(fifo).st_mode)
        assert writer.complete(received)
        assert no_temporary_files(tmp_path)

    def test_a_terminal_is_written_in_place(
        self, tmp_path: Path, plain: bytes, identity: age.Identity
    ) -> None:
        controller, terminal = os.openpty()
        try:
            name = Path(os.ttyname(terminal))
            text = b"price 1180000.50 duration 180 days"  # no newline: the terminal keeps it as is
            sealed = tmp_path / "text.age"
            sealed.write_bytes(age.seal_bytes(text, [identity.recipient]))
            key = str(tmp_path / "bidder.key")
            result = bidding("unseal", "-i", key, "-o", str(name), str(sealed))
            assert result.returncode == 0, result.stderr
            assert os.read(controller, 1024) == text
            assert stat.S_ISCHR(os.stat(name).st_mode)
        finally:
            os.close(terminal)
            os.close(controller)

    def test_a_sealed_file_is_not_written_to_a_terminal(
        self, tmp_path: Path, plain: bytes, identity: age.Identity
    ) -> None:
        controller, terminal = os.openpty()
        try:
            name = os.ttyname(terminal)
            result = bidding(
                "seal", "-r", str(identity.recipient), "-o", name, str(tmp_path / "bid.bin")
            )
            assert result.returncode == 1
            assert error_line(result) == (
                "bidding: error: refusing to write a sealed file to a terminal"
            )
            assert stat.S_ISCHR(os.stat(name).st_mode)
        finally:
            os.close(terminal)
            os.close(controller)


class TestRegularFiles:
    @pytest.mark.parametrize("writer", ["seal", "unseal"], indirect=True)  # keygen: no file
    def test_an_existing_file_is_replaced_whole_and_keeps_its_mode(
        self, writer: Writer, tmp_path: Path
    ) -> None:
        out = tmp_path / "out"
        out.write_bytes(b"old")
        out.chmod(0o640)
        result = bidding(*writer.args(out))
        assert result.returncode == 0, result.stderr
        assert writer.complete(out.read_bytes())
        assert stat.S_IMODE(out.stat().st_mode) == 0o640
        assert no_temporary_files(tmp_path)

    def test_a_failure_leaves_an_existing_file_untouched(
        self, tmp_path: Path, identity: age.Identity
    ) -> None:
        out = tmp_path / "out"
        out.write_bytes(b"old")
        stranger = age.seal_bytes(os.urandom(3 * CHUNK), [age.Identity.generate().recipient])
        result = bidding(
            "unseal", "-i", str(tmp_path / "bidder.key"), "-o", str(out), stdin=stranger
        )
        assert result.returncode == 1
        assert error_line(result) == (
            "bidding: error: no identity matches any recipient of this file"
        )
        assert out.read_bytes() == b"old"
        assert no_temporary_files(tmp_path)


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "read-only"
    folder.mkdir()
    (folder / "out").write_bytes(b"old")
    folder.chmod(0o555)
    try:
        yield folder
    finally:
        folder.chmod(0o755)


class TestReadOnlyFolders:
    @pytest.mark.parametrize(
        ("writer", "name"),
        [("seal", "out"), ("unseal", "out"), ("seal", "new"), ("unseal", "new"), ("keygen", "new")],
        indirect=["writer"],
    )
    def test_a_read_only_folder_is_one_clear_line_and_nothing_changes(
        self, writer: Writer, read_only: Path, name: str
    ) -> None:
        target = read_only / name
        result = bidding(*writer.args(target), confined=True)
        assert result.returncode == 1
        assert error_line(result) == f"bidding: error: {target}: Permission denied"
        assert sorted(path.name for path in read_only.iterdir()) == ["out"]
        assert (read_only / "out").read_bytes() == b"old"


class TestSymbolicLinks:
    @pytest.mark.parametrize("writer", ["seal", "unseal"], indirect=True)  # keygen: below
    def test_a_link_to_a_file_is_followed_and_stays_a_link(
        self, writer: Writer, tmp_path: Path
    ) -> None:
        target = tmp_path / "target"
        target.write_bytes(b"old")
        target.chmod(0o640)
        link = tmp_path / "link"
        link.symlink_to("target")
        result = bidding(*writer.args(link))
        assert result.returncode == 0, result.stderr
        assert link.is_symlink() and os.readlink(link) == "target"
        assert writer.complete(target.read_bytes())
        assert stat.S_IMODE(target.stat().st_mode) == 0o640

    def test_keygen_through_a_link_to_a_file_replaces_nothing(self, tmp_path: Path) -> None:
        target = tmp_path / "target"
        target.write_bytes(b"old key")
        link = tmp_path / "link"
        link.symlink_to("target")
        result = bidding("keygen", "-o", str(link))
        assert result.returncode == 1
        assert "already exists" in error_line(result)
        assert target.read_bytes() == b"old key" and link.is_symlink()

    def test_a_link_to_nothing_creates_its_target(self, writer: Writer, tmp_path: Path) -> None:
        link = tmp_path / "link"
        link.symlink_to("made")
        result = bidding(*writer.args(link))
        assert result.returncode == 0, result.stderr
        assert link.is_symlink()
        assert writer.complete((tmp_path / "made").read_bytes())
        assert stat.S_IMODE((tmp_path / "made").stat().st_mode) == 0o600

    @pytest.mark.skipif(not ROOT, reason="making a device node needs root")
    def test_a_link_to_a_device_writes_the_device(self, writer: Writer, tmp_path: Path) -> None:
        node = null_twin(tmp_path)
        before = os.stat(node)
        link = tmp_path / "link"
        link.symlink_to("null")
        result = bidding(*writer.args(link))
        assert result.returncode == 0, result.stderr
        assert link.is_symlink()
        assert_still_null(node, before)


# --- the receipt of `bidding submit -o` ----------------------------------------------------


@dataclass
class Tender:
    server: str
    id: str
    sealed: Path  # a bid sealed to it
    token: str


@pytest.fixture
def tender(server: str, tmp_path: Path) -> Tender:
    officer = {"Authorization": f"Bearer {sign_in(server, 'officer@example.com')}"}
    draft = httpx.post(f"{server}{TENDERS}", json=tender_body(), headers=officer)
    assert draft.status_code == 201, draft.text
    published = httpx.post(f"{server}{TENDERS}/{draft.json()['id']}/publish", headers=officer)
    assert published.status_code == 200, published.text
    recipient = age.Recipient.parse(published.json()["opening_recipient"])
    sealed = tmp_path / "bid.age"
    sealed.write_bytes(age.seal_bytes(json.dumps(FORM).encode(), [recipient]))
    return Tender(server, published.json()["id"], sealed, sign_in(server, "bidder@example.com"))


def submit(
    tender: Tender, *extra: str, cwd: Path | None = None, confined: bool = False
) -> subprocess.CompletedProcess[bytes]:
    return bidding(
        "submit", "--server", tender.server, "--tender", tender.id, "--token", tender.token,
        *extra, str(tender.sealed), cwd=cwd, confined=confined,
    )  # fmt: skip


def version_of(receipt: bytes) -> int:
    version: int = json.loads(receipt)["body"]["version"]
    return version


class TestReceipts:
    def test_a_receipt_sent_to_dev_null_leaves_it_a_device(
        self, tender: Tender, tmp_path: Path
    ) -> None:
        write_to_dev_null(lambda out: submit(tender, "-o", str(out)), tmp_path)
        assert no_temporary_files(tmp_path)

    def test_a_receipt_reaches_the_reader_of_a_fifo(self, tender: Tender, tmp_path: Path) -> None:
        fifo = tmp_path / "receipt.fifo"
        result, received = through_a_fifo(fifo, lambda: submit(tender, "-o", str(fifo)))
        assert result.returncode == 0, result.stderr
        assert stat.S_ISFIFO(os.stat(fifo).st_mode)
        assert version_of(received) == 1

    def test_a_read_only_folder_is_found_out_before_the_bid_is_sent(
        self, tender: Tender, read_only: Path, tmp_path: Path
    ) -> None:
        target = read_only / "receipt.json"
        refused = submit(tender, "-o", str(target), confined=True)
        assert refused.returncode == 1
        assert error_line(refused) == f"bidding: error: {target}: Permission denied"
        assert sorted(path.name for path in read_only.iterdir()) == ["out"]
        accepted = submit(tender, "-o", str(tmp_path / "receipt.json"))
        assert accepted.returncode == 0, accepted.stderr
        assert version_of((tmp_path / "receipt.json").read_bytes()) == 1  # nothing went before

    def test_a_receipt_that_cannot_be_saved_is_printed(
        self, tender: Tender, read_only: Path
    ) -> None:
        result = submit(tender, cwd=read_only, confined=True)
        assert result.returncode == 1
        assert error_line(result) == (
            f"bidding: error: the bid is in, but its receipt cannot be saved to "
            f"receipt-{tender.id}-v1.json (Permission denied); it is printed on stdout "
            "instead: keep it"
        )
        assert version_of(result.stdout) == 1
        assert sorted(path.name for path in read_only.iterdir()) == ["out"]

    def test_a_receipt_through_a_link_replaces_its_target(
        self, tender: Tender, tmp_path: Path
    ) -> None:
        (tmp_path / "receipts").mkdir()
        target = tmp_path / "receipts" / "latest.json"
        target.write_text("{}")
        link = tmp_path / "receipt.json"
        link.symlink_to(target)
        result = submit(tender, "-o", str(link))
        assert result.returncode == 0, result.stderr
        assert link.is_symlink() and version_of(target.read_bytes()) == 1
