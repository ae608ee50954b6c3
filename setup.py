"""pip install of fer_ros's Python side, for use without a ROS build (training, export, bag evaluation, benchmarks).

On a robot the package is built with colcon (CMakeLists.txt), which also generates the messages.
"""
from setuptools import find_packages, setup

setup(
    name="fer_ros",
    version="0.1.0",
    description="Facial expression recognition for human-robot interaction (ROS 2)",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["fer_ros", "fer_ros.*"])
    + find_packages("training", include=["fer_ros_training", "fer_ros_training.*"]),
    package_dir={"fer_ros_training": "training/fer_ros_training"},
    package_data={"fer_ros": ["bag/*.xml"]},
    install_requires=[
        "numpy>=1.23,<2",
        "protobuf>=4.25.3,<5",
        "onnxruntime>=1.17",
        "onnx>=1.16",
        "pyyaml>=6",
        "rosbags>=0.11.9",
        "rosbags-image>=0.10.4",
        "scikit-image>=0.22",
        'mediapipe==0.10.21; platform_machine == "x86_64"',
        'mediapipe>=0.10.18,<=0.10.21; platform_machine == "aarch64"',
    ],
    extras_require={"train": ["torch>=2.1", "h5py", "matplotlib", "tensorboard", "tqdm"]},
    entry_points={"console_scripts": ["fer-ros = fer_ros.cli:main"]},
)
