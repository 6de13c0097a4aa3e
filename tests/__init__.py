"""The test suite: one folder per layer of provider_aws, whole-product tests at the top."""
