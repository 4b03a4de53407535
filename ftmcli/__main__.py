from ftmcli.app import main

main(prog_name="ftm")
