"""The `target` fixture: a device test that takes it runs once on the unix image and once on
the networked QEMU Cortex-M3 image (tests/device/targets.py)."""
import pytest

from mpy import free_port
from netsec_cli import qemu
from targets import GUEST_SERVICES, QemuTarget, UnixTarget


@pytest.fixture(scope="session")
def qemu_target_guest(qemu_image, tmp_path_factory):
    """The Cortex-M3 image on a network, its address from DHCP; booted once per test run."""
    ports = {name: free_port() for name in GUEST_SERVICES}
    network = qemu.GuestNetwork(hostfwd={443: 0, 80: 0},
                                guestfwd={GUEST_SERVICES[name]: port for name, port in ports.items()})
    guest = qemu.Guest(qemu_image, network=network,
                       log_path=tmp_path_factory.mktemp("qemu-target") / "qemu.log")
    guest.exec("from netsec import lan\nlan.up()", timeout=30)
    yield guest, ports
    guest.stop()


@pytest.fixture(scope="module", params=["unix", "qemu"])
def target(request):
    if request.param == "unix":
        return UnixTarget(request.getfixturevalue("unix_image"))
    guest, ports = request.getfixturevalue("qemu_target_guest")
    return QemuTarget(guest, ports)
