from sdoc_model.train.cli import main

main()
