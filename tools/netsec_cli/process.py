"""Child processes the host side starts (QEMU, images running a script, benchmark servers)."""
import subprocess


def stop_process(process, timeout=5):
    """End a child process: ask it to terminate, kill it if it is still there after timeout s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
