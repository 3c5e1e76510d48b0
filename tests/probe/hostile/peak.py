"""``python -S peak.py OUT CMD...``: run CMD, then write its peak RSS in bytes to the file OUT.

Why a launcher: ``ru_maxrss`` of a child counts the image it was forked from (the kernel keeps
the highest resident size across ``exec``), so a child forked from a test runner would report
the runner's size. Forked from this small script instead, only the command's own peak can be
the largest. Exits with the command's exit code.
"""

import os
import subprocess
import sys

process = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(process.pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss * 1024))
sys.exit(os.waitstatus_to_exitcode(status))
