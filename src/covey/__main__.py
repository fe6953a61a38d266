from covey.cli.main import main

main()
