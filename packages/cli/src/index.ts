export { type DoctorCheck, formatDoctor, runDoctor } from "./commands/doctor.js";
