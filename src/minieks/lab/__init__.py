"""The lab as a product: the seed scenario's steps, run live on a minieks cluster and reported."""
