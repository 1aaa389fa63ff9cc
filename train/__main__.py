"""`python -m pgolf_train` (and `torchrun ... -m pgolf_train`): the pgolf-train command."""

from pgolf_train.cli import main

raise SystemExit(main())
