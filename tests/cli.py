"""The `labkit` command the suites run as a user would: the console script installed beside this interpreter."""

import sys
from pathlib import Path

LABKIT = str(Path(sys.executable).with_name("labkit"))
