from sprunner.cli import main

main()
