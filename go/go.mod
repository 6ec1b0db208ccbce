module snapsafe.dev/snapsafe

go 1.19
