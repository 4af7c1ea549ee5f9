# netsec.server's static files and protect() on FAT and littlefs RAM block devices, through
# the socket-free test client (tests/portable/testclient.py). argv 1: tests/portable.
# Prints one line per request: "FS STATUS TARGET".
import sys
import vfs

sys.path.insert(0, sys.argv[1])
from testclient import TestClient  # noqa: E402

from netsec.server import BasicAuth, Server, hash_password  # noqa: E402


class RAMBlocks:
    # The block protocol vfs.VfsFat and vfs.VfsLfs2 mount: 512-byte blocks with offsets.
    def __init__(self, count, size=512):
        self.size = size
        self.data = bytearray(count * size)

    def readblocks(self, block, buf, offset=0):
        start = block * self.size + offset
        buf[:] = self.data[start:start + len(buf)]

    def writeblocks(self, block, buf, offset=None):
        start = block * self.size + (offset or 0)
        self.data[start:start + len(buf)] = buf

    def ioctl(self, op, arg):
        if op == 4:  # number of blocks
            return len(self.data) // self.size
        if op == 5:  # block size
            return self.size
        if op == 6:  # erase (littlefs)
            return 0
        return None


def populate(root):
    for d in ("www", "admin", "netsec-credentials", "administration"):
        vfs_mkdir(root + "/" + d)
    for path, text in (("www/index.html", "index"), ("admin/x", "admin's file"),
                       ("administration/y", "administration's file"),
                       ("netsec-credentials/Net_Security.py", "SERVER_KEY = b'private'")):
        with open(root + "/" + path, "w") as f:
            f.write(text)


def vfs_mkdir(path):
    import os
    os.mkdir(path)


TARGETS = ("/static/index.html", "/static/..%5Cnetsec-credentials%5CNet_Security.py",
           "/static/..\\netsec-credentials\\Net_Security.py",
           "/netsec-credentials/Net_Security.py", "/NETSEC-CREDENTIALS/Net_Security.py",
           "/Netsec-Credentials./Net_Security.py", "/NETSEC~1/Net_Security.py",
           "/admin/x", "/ADMIN/x", "/Admin/x", "/admin./x", "/admin%20/x", "/ADMINI~1/y",
           "/administration/y", "/C:/admin/x", "/static/%00x")

for name, make in (("fat", lambda dev: (vfs.VfsFat.mkfs(dev), vfs.VfsFat(dev))[1]),
                   ("lfs", lambda dev: (vfs.VfsLfs2.mkfs(dev), vfs.VfsLfs2(dev))[1])):
    vfs.mount(make(RAMBlocks(256)), "/" + name)
    populate("/" + name)
    app = Server()
    app.static("/static", "/%s/www" % name)
    app.static("/", "/" + name)  # the whole file system, on purpose
    users = {"admin": hash_password("s3cret", iterations=2)}
    app.protect("/admin", BasicAuth(users))
    app.protect("/administration", BasicAuth(users))
    client = TestClient(app)
    for target in TARGETS:
        reply = client.request("GET", target)
        print(name, reply.status, target)
    vfs.umount("/" + name)
