import sys

from testing.oracle.cli import main

sys.exit(main())
