from golive_cli.main import main

main()
