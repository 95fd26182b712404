import sys

from ferrite.cli import main

sys.exit(main())
