import sys

from pgshim.cli import main

sys.exit(main())
