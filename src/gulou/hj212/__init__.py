"""HJ 212 station gateway: the TCP protocol of China's certified air and water stations into the pipeline."""
