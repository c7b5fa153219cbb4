`we\`ird\\ name's`
