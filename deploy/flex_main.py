"""Entry point for the Dataflow flex template launcher (it runs a file, not a module)."""
import sys

from pipeline.run import main

if __name__ == "__main__":
    sys.exit(main())
