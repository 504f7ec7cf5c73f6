"""Run the emulator by hand: ``python -m grafana_emulator [port] [version]`` from ``tests/``."""

import sys
import threading

from . import GrafanaEmulator


def main() -> None:
    emu = GrafanaEmulator(port=int(sys.argv[1]) if len(sys.argv) > 1 else 3000,
                          version=sys.argv[2] if len(sys.argv) > 2 else "11.5.0").start()
    print(f"Grafana emulator {emu.version} on {emu.url}  token={emu.token}  "
          f"basic={emu.basic_auth}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        emu.stop()


main()
