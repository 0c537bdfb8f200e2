"""Stand-in for the get-pip script ansible-test downloads (unreachable here).

ansible-test runs it as `python get_pip.py [pip args]`; bootstrap pip from the
interpreter's own ensurepip, then install what was asked for.
"""
import os
import subprocess
import sys


def main():
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
    args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
    env = dict(os.environ)
    env.setdefault("PIP_CERT", "/etc/ssl/certs/ca-certificates.crt")
    if args:
        subprocess.check_call([sys.executable, "-m", "pip", "install"] + args, env=env)


if __name__ == "__main__":
    main()
