"""The archive job: manifest -> fetch -> decode -> restore or stylize actors -> encode and write."""
