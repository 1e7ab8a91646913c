from dpiqa_cli.cli import main

main()
