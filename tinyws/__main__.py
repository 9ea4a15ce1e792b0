import sys

from tinyws.cli import main

sys.exit(main())
