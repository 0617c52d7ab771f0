"""`python -m inboxrl.training train --config FILE`: the CLI as a module, for launchers that take a module or a
script (`accelerate launch -m inboxrl.training train ...`, `torchrun -m inboxrl.training train ...`)."""

from inboxrl.cli import app

if __name__ == "__main__":
    app()
