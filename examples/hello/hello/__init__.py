"""The hello example: a tiny web app that answers with the instance, zone and version serving it."""
