from devstack.run import main

main()
