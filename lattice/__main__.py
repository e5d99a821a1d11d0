from lattice.cli.server import main

main()
