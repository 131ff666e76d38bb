"""Training and transfer for Jazbat-Net. One module per part (see ``docs/training.md``):

    config       RunConfig = DataConfig + ModelConfig + TrainConfig + an optional TransferConfig
    trainer      pretrain(config, workdir) / finetune(config, workdir): the one trainer
    loop         the epoch loop in parts: prepare, train_epoch, validate, commit_epoch, finish
    state, steps the train state, the jitted train / eval steps, the optimizer, class weights
    transfer     re-heading by parameter-tree surgery, frozen-trunk optimizers
    checkpoint   orbax checkpoints (last N and best) with fingerprints
    evaluate     whole-set inference: Evaluator, inference_state, evaluate_windows
    predict      sliding-window prediction over one recording
    metrics, plots, input_pipeline, sharding
    cli          the pretrain / finetune / evaluate / predict commands

Submodules are imported where needed: importing this package loads nothing heavy.
"""
