"""``python -m gridmarl`` (what ``torchrun … -m gridmarl train …`` starts): the command line."""

from gridmarl.cli import main

if __name__ == "__main__":
    main()
