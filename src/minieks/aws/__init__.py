"""Facts about AWS itself: instance-type network limits and the max-pods arithmetic built on them."""
