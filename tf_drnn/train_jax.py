"""`python -m tf_drnn.train_jax`: `tf-drnn-train` under Keras' JAX backend (`tf-drnn-train-jax`),
for machines with JAX and no TensorFlow. The trainer is :mod:`tf_drnn.train`."""
if __name__ == "__main__":
  from tf_drnn.train import run_jax
  run_jax()
