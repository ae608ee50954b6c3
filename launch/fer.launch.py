"""Start fer_node on a camera topic.

    ros2 launch fer_ros fer.launch.py camera:=/head_camera/image_raw
    ros2 launch fer_ros fer.launch.py camera:=/head_camera/image_raw compressed:=true backend:=tensorrt \
        model:=/opt/models/rmn_fer2013/model.yaml namespace:=perception
    ros2 launch fer_ros fer.launch.py hri_mode:=companion     # beside hri_face_detect: expressions for its faces
"""
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch.events.process import ProcessExited
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


class LaunchRefused(RuntimeError):
    """Why this launch stops. launch 3.4 has no action that sets its exit code: an exception raised while it runs is
    what it logs as one ERROR line, shuts down on and turns into exit code 1 (LaunchService.run)."""


def require_params_file(context: LaunchContext) -> list:
    """Refuse a params_file that does not exist (launch_ros would only warn and start the node on defaults)."""
    path = LaunchConfiguration("params_file").perform(context)
    if not Path(path).is_file():
        raise LaunchRefused(f"params_file {path} does not exist: pass an existing YAML file (the default is "
                            f"share/fer_ros/config/fer.yaml)")
    return []


def fail_on_error_exit(event: ProcessExited, context: LaunchContext) -> None:
    """fer_node exiting with an error (bad model, backend or parameter at start-up, a crash) fails the launch, so
    that systemd or a robot's bring-up sees it; exit code 0 (a stop) lets the launch end normally."""
    if event.returncode != 0:
        raise LaunchRefused(f"{event.process_name} exited with code {event.returncode} (its messages above say why)")


def generate_launch_description() -> LaunchDescription:
    default_params = str(Path(get_package_share_directory("fer_ros")) / "config" / "fer.yaml")
    camera = LaunchConfiguration("camera")
    compressed = LaunchConfiguration("compressed")
    args = [
        DeclareLaunchArgument("camera", default_value="/camera/image_raw",
                              description="Image topic of the camera (for compressed input, the base topic: "
                                          "<camera>/compressed is subscribed)."),
        DeclareLaunchArgument("compressed", default_value="false", choices=["true", "false"],
                              description="Subscribe to <camera>/compressed (JPEG/PNG) instead of <camera>."),
        DeclareLaunchArgument("model", default_value="mini_xception_fer2013",
                              description="Model id (under share/fer_ros/models or $FER_ROS_MODEL_PATH), or a path to "
                                          "a model.yaml or to a model folder holding one."),
        DeclareLaunchArgument("backend", default_value="auto",
                              choices=["auto", "tensorrt", "onnxruntime", "torch"],
                              description="Inference backend (auto: TensorRT when an engine, tensorrt and a GPU "
                                          "are present, else ONNX Runtime)."),
        DeclareLaunchArgument("params_file", default_value=default_params,
                              description="YAML file with fer_node's parameters, keyed '/**/fer_node: "
                                          "ros__parameters:' (a bare 'fer_node:' is ignored under a namespace)."),
        DeclareLaunchArgument("hri_mode", default_value="pipeline", choices=["pipeline", "companion", "disabled"],
                              description="ROS4HRI role: pipeline (fer_node is the face detector: /humans/faces/...),"
                                          " companion (expressions for another REP-155 detector's faces; no camera)"
                                          ", disabled."),
        DeclareLaunchArgument("namespace", default_value="",
                              description="Namespace for the node and its relative topics (emotions, "
                                          "debug_image)."),
        DeclareLaunchArgument("emulate_tty", default_value="false", choices=["true", "false"],
                              description="Run the node on a pseudo-terminal (coloured log lines); off, so that "
                                          "logs captured by systemd or a file carry no ANSI codes."),
    ]
    overrides = {
        "compressed": ParameterValue(PythonExpression(["'", compressed, "' == 'true'"]), value_type=bool),
        "model": LaunchConfiguration("model"),
        "backend": LaunchConfiguration("backend"),
        "hri.mode": LaunchConfiguration("hri_mode"),
    }
    remappings = [("image", camera)]  # compressed:=true: the node subscribes to <camera>/compressed
    node = Node(package="fer_ros", executable="fer_node", name="fer_node", namespace=LaunchConfiguration("namespace"),
                parameters=[LaunchConfiguration("params_file"), overrides], remappings=remappings, output="screen",
                additional_env={"PYTHONUNBUFFERED": "1"})  # emulate_tty: launch reads the argument itself
    return LaunchDescription(args + [OpaqueFunction(function=require_params_file), node, RegisterEventHandler(
        OnProcessExit(target_action=node, on_exit=fail_on_error_exit))])
