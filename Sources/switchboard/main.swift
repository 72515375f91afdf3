import Glibc
import SwitchboardServer

exit(SwitchboardCommand.main(Array(CommandLine.arguments.dropFirst())))
