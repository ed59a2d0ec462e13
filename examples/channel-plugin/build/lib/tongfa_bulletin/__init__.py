"""The lobby's electronic notice board as a tongfa channel kind (`bulletin`)."""
