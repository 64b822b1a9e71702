from gtok_cli.cli import main

main()
